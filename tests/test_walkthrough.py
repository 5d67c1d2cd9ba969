"""docs/WALKTHROUGH.md names code as `file.py:function` (or `file.py:Class.method`), labs and
files to read: every one must exist, so that the page cannot drift from the code as names move."""
import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = open(os.path.join(ROOT, "docs", "WALKTHROUGH.md"), encoding="utf-8").read()


def top_level_names(path):
    """{name: node} of a file's top-level functions, classes and assigned names."""
    names = {}
    for node in ast.parse(open(path, encoding="utf-8").read()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.Assign):
            names.update({t.id: node for t in node.targets if isinstance(t, ast.Name)})
    return names


def test_every_file_function_the_walkthrough_names_exists():
    refs = re.findall(r"`([\w/]+\.py):([\w.]+)`", PAGE)
    assert len(refs) >= 20, "the walkthrough's table should name the functions of every claim"
    missing = []
    for path, name in refs:
        full = os.path.join(ROOT, path)
        if not os.path.exists(full):
            missing.append(f"{path} (no such file)")
            continue
        first, _, rest = name.partition(".")              # Class.method: look inside the class
        node = top_level_names(full).get(first)
        members = {n.name for n in getattr(node, "body", []) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        if node is None or (rest and rest not in members):
            missing.append(f"{path}:{name}")
    assert not missing, f"docs/WALKTHROUGH.md names code that does not exist: {missing}"


def test_the_labs_and_files_it_names_exist():
    claims = PAGE.split("## 2.")[1].split("## 3.")[0]
    rows = [r.split("|") for r in claims.splitlines() if r.startswith("| ")]
    labs = {lab for r in rows[1:] for lab in re.findall(r"`(\w+)`", r[3])}    # the "lab" column
    assert len(labs) >= 9, f"the claims table should name every lab, found {sorted(labs)}"
    missing = [lab for lab in labs if not os.path.exists(os.path.join(ROOT, "labs", f"{lab}.py"))]
    assert not missing, f"docs/WALKTHROUGH.md names labs that do not exist: {missing}"
    for path in re.findall(r"`((?:\w+/)*\w+\.(?:py|md))`", PAGE):
        if not path.startswith("../") and "RESULTS-quick" not in path:   # reproduce.py --quick writes it
            assert os.path.exists(os.path.join(ROOT, path)), f"docs/WALKTHROUGH.md names {path}: missing"
