"""The package's shape, read from the source (no imports run): imports flow one
way through the layers, with no cycle at any depth (function-level imports
included), one optimizer factory, layer choices as module fields (no flax
method interceptors), and no module past 450 lines."""

import ast
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("s2v_jax", "tfds_builders", "configs")
MAX_LINES = 450

# Lowest first; a module may import only modules of its own layer or a lower one.
LAYERS = [
    ("base", ["s2v_jax.errors", "s2v_jax.config_utils", "s2v_jax.assets", "s2v_jax.native_logs", "configs"]),
    ("media", ["s2v_jax.media"]),
    ("faces", ["s2v_jax.faces"]),
    ("data", ["s2v_jax.synth", "s2v_jax.data", "tfds_builders"]),
    ("models", ["s2v_jax.models"]),
    ("train", ["s2v_jax.train"]),
    ("inference", ["s2v_jax.inference"]),
    ("evaluation", ["s2v_jax.evaluation"]),
    ("commands", ["s2v_jax.commands", "s2v_jax.cli", "s2v_jax.quickstart", "s2v_jax.summary", "s2v_jax"]),
]


def _modules():
    """{module name: path} of every .py file in the packages."""
    out = {}
    for pkg in PACKAGES:
        for root, _, files in os.walk(os.path.join(REPO, pkg)):
            for f in files:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(root, f), REPO)[:-3].replace(os.sep, ".")
                    out[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = os.path.join(root, f)
    return out


def _imports(name, path, modules):
    """Project modules `name` imports anywhere in its file (module level or inside functions)."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    is_pkg = path.endswith("__init__.py")
    found = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")
                anchor = parts if is_pkg else parts[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for t in targets:
            while t and t not in modules:  # `import a.b.c` of a module: the deepest project module named
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_the_reader_finds_imports_at_any_depth(tmp_path):
    """The checker itself: a function-level import is an edge, and a cycle through one is found."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("import os\n\ndef f():\n    from pkg import b\n")
    b.write_text("from pkg.a import f\n")
    modules = {"pkg.a": str(a), "pkg.b": str(b)}
    g = {n: _imports(n, p, modules) for n, p in modules.items()}
    assert g == {"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert _find_cycle(g) is not None


def _find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_no_import_cycle(graph):
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _layer(module):
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if module == p or module.startswith(p + "."):
                if best is None or len(p) > best[1]:
                    best = (rank, len(p))
    assert best is not None, f"{module} is in no layer of tests/test_architecture.py"
    return best[0]


def test_imports_flow_one_way(graph):
    upward = [f"{a} ({LAYERS[_layer(a)][0]}) imports {b} ({LAYERS[_layer(b)][0]})"
              for a, deps in sorted(graph.items()) for b in sorted(deps) if _layer(b) > _layer(a)]
    assert not upward, "\n".join(upward)


def test_modules_stay_small():
    long = {n: sum(1 for _ in open(p, encoding="utf-8")) for n, p in _modules().items()}
    assert not {n: c for n, c in long.items() if c > MAX_LINES}, long


def _sources():
    return {n: open(p, encoding="utf-8").read() for n, p in _modules().items() if n.startswith("s2v_jax")}


def test_layer_choices_are_module_fields_not_interceptors():
    assert not [n for n, src in _sources().items() if "intercept_methods" in src]


def test_one_optimizer_factory():
    """Every optax optimizer is built in s2v_jax.train.optimizer, which every task's state uses."""
    pattern = re.compile(r"optax\.(sgd|adam|adamw|rmsprop|lamb|lars|chain|add_decayed_weights)\(")
    makers = sorted(n for n, src in _sources().items() if pattern.search(src))
    assert makers == ["s2v_jax.train.optimizer"], makers
