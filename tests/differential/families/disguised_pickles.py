"""Family: pickles stored under the names of other formats, and their plain-data twins.

Loaders pick by content: ``pickle.load`` reads any file, ``numpy.load`` falls back to
unpickling a file that has neither the npy nor the zip magic, ``torch.load`` unpickles a file
without the zip magic. So a pickle named ``.safetensors``, ``.npy``, ``fingerprint.pb`` or
``corpus.index`` runs its payload under the loader that gets it. Each malicious variant must
be caught at HIGH whatever its name; each benign twin (lists, dicts, numbers and strings,
which every protocol writes without importing anything, as gensim's ``*.index`` offsets)
must stay below MEDIUM: a name mismatch alone is no reason to alarm when the content cannot
run code.
"""

from __future__ import annotations

import builtins
import pickle
from collections.abc import Iterator

from regression.samples import Reduce

from differential.harness import PayloadFor, Variant, key_of

FAMILY = "disguised-pickles"

#: (file name, loader): names of data-only formats, and the loaders that unpickle them.
NAMES: tuple[tuple[str, str], ...] = (
    ("model.safetensors", "pickle"),
    ("model.onnx", "pickle"),
    ("config.json", "pickle"),
    ("README.md", "pickle"),
    ("testcorpus.mm.index", "pickle"),
    ("fingerprint.pb", "pickle"),
    ("graph.binarypb", "pickle"),
    ("model.tflite", "pickle"),
    ("model.gguf", "pickle"),
    ("weights.npy", "numpy"),
    ("pytorch_model.bin", "torch"),
    ("labels.txt", "pickle"),
)

#: What gensim, sklearn and friends pickle as plain data: no bytes (protocols 0-2 write
#: them with a call to _codecs.encode) and no sets (a call to builtins.set before 4).
PLAIN = {"offsets": [0, 97, 182, 291], "scale": 0.5, "name": "corpus", "flags": (True, None)}


def variants(payload: PayloadFor) -> Iterator[Variant]:
    for filename, loader in NAMES:
        stem = filename.replace(".", "_")
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            name = f"{stem}_exec_p{protocol}"
            data = pickle.dumps(Reduce(builtins.exec, payload(key_of(FAMILY, name))), protocol)
            yield Variant(FAMILY, name, filename, data, loader)
            # torch.load wants its magic number first (the payload above runs before that
            # check); the plain twin is proven loadable with pickle itself.
            yield Variant(FAMILY, f"{stem}_plain_p{protocol}", filename,
                          pickle.dumps(PLAIN, protocol),
                          "pickle" if loader == "torch" else loader, malicious=False)
