"""
The package's layering: no import cycle among its modules, the hub and the
protocol independent of each other, and every module saying its one job.
"""

from __future__ import annotations

import ast
import importlib
import os
from typing import Dict, Iterator, List, Set

from twisted.trial.unittest import SynchronousTestCase

import logger_service

PACKAGE = os.path.dirname(os.path.abspath(logger_service.__file__))


def modules() -> Dict[str, str]:
    """
    Every module of the package: its dotted name, and its file.
    """
    found = {}
    for directory, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                parts = ["logger_service"] + os.path.relpath(path, PACKAGE)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts.pop()
                found[".".join(parts)] = path
    return found


def isTypeChecking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def moduleLevel(body: List[ast.stmt], typing: bool) -> Iterator[ast.stmt]:
    """
    The statements run when the module is imported (with C{typing}, also
    those only a type checker reads), not those in functions or classes.
    """
    for node in body:
        if isinstance(node, ast.If):
            if isTypeChecking(node):
                if typing:
                    yield from moduleLevel(node.body, typing)
                yield from moduleLevel(node.orelse, typing)
                continue
            yield from moduleLevel(node.body + node.orelse, typing)
        elif isinstance(node, ast.Try):
            yield from moduleLevel(node.body + node.orelse + node.finalbody, typing)
            for handler in node.handlers:
                yield from moduleLevel(handler.body, typing)
        else:
            yield node


def imports(name: str, path: str, known: Set[str], typing: bool = False) -> Set[str]:
    """
    The package's modules that module C{name} imports when it is imported.
    """
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found: Set[str] = set()
    for node in moduleLevel(tree.body, typing):
        targets: List[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            if target in known and target != name:
                found.add(target)
    return found


def cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """
    One import cycle in C{graph}, or an empty list.
    """
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for after in sorted(graph[node]):
            if state.get(after) == 1:
                return stack[stack.index(after) :] + [after]
            if after not in state:
                found = visit(after)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


class LayeringTests(SynchronousTestCase):
    """
    The package's modules import each other one way.
    """

    def test_cycleFinder(self) -> None:
        """
        L{cycle} finds a cycle, and none where there is none.
        """
        self.assertEqual(cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}), ["a", "b", "c", "a"])
        self.assertEqual(cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}), [])

    def test_noCycle(self) -> None:
        """
        No module imports, directly or not, a module that imports it: not
        when the package is imported, and not for a type checker either.
        """
        known = modules()
        for typing in (False, True):
            graph = {name: imports(name, path, set(known), typing) for name, path in known.items()}
            self.assertEqual(cycle(graph), [], "type checker" if typing else "import")

    def test_hubAndProtocol(self) -> None:
        """
        The hub and the protocol know each other only through
        L{logger_service.interfaces}, not even for a type checker.
        """
        known = modules()
        graph = {name: imports(name, path, set(known), typing=True) for name, path in known.items()}
        self.assertNotIn("logger_service.protocol", graph["logger_service.hub"])
        self.assertNotIn("logger_service.factory", graph["logger_service.hub"])
        self.assertNotIn("logger_service.hub", graph["logger_service.protocol"])
        self.assertNotIn("logger_service.hub", graph["logger_service.factory"])
        self.assertNotIn("logger_service.drain", graph["logger_service.hub"])

    def test_everyModuleImports(self) -> None:
        """
        Every module imports on its own, and its docstring's first line says
        what it is for.
        """
        for name in sorted(modules()):
            module = importlib.import_module(name)
            doc = (module.__doc__ or "").strip()
            self.assertTrue(doc, f"{name} has no docstring")
