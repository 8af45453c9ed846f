#!/usr/bin/python3
"""A model directory re-saved with its weights in an external data file, the layout most real exports have
(Optimum: model.onnx + model.onnx_data; ONNX Runtime GenAI's builder: model.onnx + model.onnx.data).

  external_data.py --src DIR --out DIR [--graph model.onnx] [--location model.onnx_data] [--copy a.json ...]

Loads <src>/<graph> (with its own external data, if any) and saves <out>/<graph> with every initializer's bytes
in <out>/<location> (one file, size_threshold 0: even scalars go out, so the reader's external path is the only
one exercised), as Optimum does. --copy: other files of <src> copied as they are (config, tokenizer, ...).
Deterministic: rerunning reproduces the same bytes. build.sh slots-tiny-external writes the Java tests' fixture
src/test/resources/models/slots-tiny-external from slots-tiny.

data_files(path) lists the external data files a graph names (package.py ships them beside it).
"""
import argparse, os, shutil
import onnx
from onnx import external_data_helper


def data_files(path):
    """The external data locations the tensors of the graph at `path` name (relative to its directory)."""
    m = onnx.load(path, load_external_data=False)
    out = []
    for t in external_data_helper._get_all_tensors(m):
        if external_data_helper.uses_external_data(t):
            loc = external_data_helper.ExternalDataInfo(t).location
            if loc not in out:
                out.append(loc)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--graph", default="model.onnx")
    ap.add_argument("--location", default="model.onnx_data")
    ap.add_argument("--copy", nargs="*", default=[])
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    m = onnx.load(os.path.join(a.src, a.graph))  # loads the source's external data too, if it has any
    dst = os.path.join(a.out, a.graph)
    data = os.path.join(a.out, a.location)
    if os.path.exists(data):
        os.remove(data)  # onnx appends to an existing data file
    onnx.save_model(m, dst, save_as_external_data=True, all_tensors_to_one_file=True, location=a.location,
                    size_threshold=0)
    for f in a.copy:
        shutil.copyfile(os.path.join(a.src, f), os.path.join(a.out, f))
    onnx.checker.check_model(dst)
    assert data_files(dst) == [a.location], data_files(dst)
    for f in sorted(os.listdir(a.out)):
        print("%-24s %9d" % (f, os.path.getsize(os.path.join(a.out, f))))


if __name__ == "__main__":
    main()
