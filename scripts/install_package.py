"""Copies the built xchan package (the .py files and this interpreter's _xchan extension)
into the running interpreter's site-packages: `make install PY=/path/to/python3.X`."""
import shutil
import sys
import sysconfig
from pathlib import Path

src = Path(sys.argv[1])
dst = Path(sysconfig.get_paths()["purelib"]) / "xchan"
suffix = sysconfig.get_config_var("EXT_SUFFIX")
dst.mkdir(parents=True, exist_ok=True)
copied = []
for f in src.iterdir():
    if f.suffix in (".py", ".pyi") or f.name == "py.typed" or f.name == "_xchan" + suffix:
        shutil.copy2(f, dst / f.name)
        copied.append(f.name)
if "_xchan" + suffix not in copied:
    sys.exit(f"no _xchan{suffix} in {src}: build for this interpreter first")
print(f"installed xchan into {dst}")
