"""Settings shared by every test: no model hub traffic, one thread per torch op pool."""

import os

# Tests use bundled assets and tiny models only, so the hub client must never wait on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
