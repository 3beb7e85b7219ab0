"""The "About the data and models" panel: sources, licenses and citations of the bundled assets."""

from __future__ import annotations

import pandas as pd

__all__ = ["assets_markdown", "assets_frame"]


def assets_frame() -> pd.DataFrame:
    """Return one row per bundled asset: name, kind, description, packages, license, cached."""
    from msplora.assets import list_assets

    rows = [
        {
            "name": entry["name"],
            "kind": entry["kind"],
            "description": entry["description"],
            "source": ", ".join(entry.get("packages") or []),
            "license": entry["license"],
            "cached": "yes" if entry["cached"] else "no (fetched on first use)",
        }
        for entry in list_assets()
    ]
    return pd.DataFrame(rows, columns=["name", "kind", "description", "source", "license", "cached"])


def assets_markdown() -> str:
    """Return the citation of each bundled asset as Markdown, one section per asset."""
    from msplora.assets import list_assets

    sections = []
    for entry in list_assets():
        homepage = f" ({entry['homepage']})" if entry.get("homepage") else ""
        sections.append(
            f"**{entry['name']}**{homepage}: {entry['description']}\n\n"
            f"License: {entry['license']}. Cite: {entry['citation']}"
        )
    return "\n\n---\n\n".join(sections)
