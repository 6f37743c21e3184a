"""Prerequisites as written in a challenge definition (``requires``) and their compiled form.

```yaml
requires:
  challenges: [coffee-starter]     # completed first (the completing event itself does not count yet)
  tiers: [gold, platinum]          # the member's computed tier (member.tier)
  member: {field: member.city, eq: Milano}   # any filter over member attributes
```

The tier condition is read from the member's ``tier`` attribute (which the tiers step computes before
challenges run), so this package never imports the tiers domain.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from challenges.models import NO_REQUIREMENTS, Requirements
from engine.errors import DefinitionError
from engine.predicates import All, AnyOf, Leaf, Not, Predicate, parse_predicate

MAX_REQUIRED = 20
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]


class RequiresSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Prerequisites of a challenge: other challenges completed first, a tier, a member condition."""

    challenges: Annotated[list[Key], msgspec.Meta(max_length=MAX_REQUIRED)] = []
    """Keys of challenges the member must have completed before an event counts here."""
    tiers: Annotated[list[Key], msgspec.Meta(max_length=MAX_REQUIRED)] = []
    """The member's tier must be one of these (``member.tier``, computed by the tiers step)."""
    member: dict[str, Any] | None = None
    """Any filter over ``member.<attribute>`` (like a campaign's eligibility)."""


def member_only(predicate: Predicate, path: str, *, what: str = "eligibility") -> None:
    """Refuse a filter that looks at anything but ``member.<attribute>`` (eligibility, requirements).

    Raises:
        DefinitionError: a leaf looks at an event's type or properties.
    """
    match predicate:
        case Leaf(field=field):
            if not field.startswith("member."):
                raise DefinitionError(
                    f"{what} looks at member attributes only (member.<name>), not {field!r}", field=path
                )
        case All(of=of) | AnyOf(of=of):
            for child in of:
                member_only(child, path, what=what)
        case Not(child=child):
            member_only(child, path, what=what)


def build_requirements(spec: RequiresSpec | None, *, key: str, path: str) -> Requirements:
    """Compile a challenge's prerequisites (the tier and member conditions become one member-only filter).

    Raises:
        DefinitionError: the challenge requires itself, a prerequisite is named twice, or a bad member filter.
    """
    if spec is None:
        return NO_REQUIREMENTS
    for index, other in enumerate(spec.challenges):
        if other == key:
            raise DefinitionError(f"challenge {key!r} cannot require itself", field=f"{path}.challenges[{index}]")
        if other in spec.challenges[:index]:
            raise DefinitionError(f"{other!r} is named twice", field=f"{path}.challenges[{index}]")
    parts: list[Predicate] = []
    if spec.tiers:
        parts.append(Leaf(field="member.tier", op="in", value=tuple(spec.tiers)))
    member = None if spec.member is None else parse_predicate(spec.member, path=f"{path}.member")
    if member is not None:
        member_only(member, f"{path}.member", what="`requires.member`")
        parts.append(member)
    condition = None if not parts else parts[0] if len(parts) == 1 else All(of=tuple(parts))
    return Requirements(challenges=tuple(spec.challenges), tiers=tuple(spec.tiers), member=condition)
