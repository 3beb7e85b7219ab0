"""The MSPLoRA Workbench: a Gradio app over the shared engine (`python -m workbench`).

The app is a view over `msplora.engine`: it submits RunSpecs and reads the
run store. The handler modules (`launch`, `runs`, `compare`, `whatif`,
`learn`, `about`) are plain functions that tests call without a browser, and
`layout.build_app` wires them into one page.
"""
