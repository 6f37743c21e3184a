"""The prerequisite graph of a program: every required challenge exists, and nothing requires itself in a loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import DefinitionError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence


def check_graph(required: Iterable[tuple[str, Sequence[str], str]]) -> None:
    """Check ``(key, keys it requires, path of its requires.challenges)`` for unknown keys and cycles.

    Raises:
        DefinitionError: a required challenge the program does not have, or a cycle (named in order).
    """
    entries = list(required)
    graph = {key: tuple(needs) for key, needs, _path in entries}
    paths = {key: path for key, _needs, path in entries}
    for key, needs, path in entries:
        for index, other in enumerate(needs):
            if other not in graph:
                raise DefinitionError(
                    f"challenge {key!r} requires {other!r}, which the program does not have", field=f"{path}[{index}]"
                )
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in graph:
        cycle = _cycle_from(start, graph, state, [])
        if cycle:
            loop = " → ".join([*cycle, cycle[0]])
            raise DefinitionError(f"prerequisites form a cycle: {loop}", field=paths[cycle[0]])


def _cycle_from(key: str, graph: Mapping[str, tuple[str, ...]], state: dict[str, int], trail: list[str]) -> list[str]:
    if state.get(key) == 2:
        return []
    if state.get(key) == 1:
        return trail[trail.index(key) :]
    state[key] = 1
    trail.append(key)
    for other in graph.get(key, ()):
        found = _cycle_from(other, graph, state, trail)
        if found:
            return found
    trail.pop()
    state[key] = 2
    return []
