"""The stored JSON of a member's challenge state (pure: no database).

Format 2 (``{"format":2,…}``, short names, no repeated keys) is written; the first format is still read.
The pipeline reads states as :class:`EncodedState`, decoding one challenge at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from challenges.models import (
    MEMBER_STATE_NAMES,
    PROGRESS_NAMES,
    STATE_FORMAT,
    STREAK_CARRY_NAMES,
    MemberState,
    Progress,
)

if TYPE_CHECKING:
    from collections.abc import Mapping


class EncodedState(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    omit_defaults=True,
    gc=False,
    tag_field="format",
    tag=STATE_FORMAT,
    rename=MEMBER_STATE_NAMES,
):
    """A member's stored state with each challenge's instances left encoded: the same JSON as :class:`MemberState`.

    The pipeline decodes only the challenges an event looks at (:func:`decode_instances`) and writes the
    others back byte for byte, so a member with progress on many challenges costs no more to update than
    one with progress on a few.
    """

    progress: dict[str, msgspec.Raw] = {}
    completions: dict[str, int] = {}


_state_decoder = msgspec.json.Decoder(MemberState)
_encoded_state_decoder = msgspec.json.Decoder(EncodedState)
_instances_decoder = msgspec.json.Decoder(dict[str, Progress])
_state_encoder = msgspec.json.Encoder()
_FORMAT_MARK = '{"format":'
"""How every stored state starts since format 2 (the tag's value is checked when decoding)."""


def _current(text: str | bytes) -> bool:
    """Whether a stored state has a format tag (else it is in the first, long-named format)."""
    return text.startswith(_FORMAT_MARK) if isinstance(text, str) else text.startswith(_FORMAT_MARK.encode())


def _from_legacy(text: str | bytes) -> MemberState:
    """Read a state stored in the first format: long field names, each progress naming its challenge and instance."""
    data = msgspec.json.decode(text)
    progress = {
        key: {instance: _short_names(fields) for instance, fields in instances.items()}
        for key, instances in data.get("progress", {}).items()
    }
    plain = {
        "format": STATE_FORMAT,
        MEMBER_STATE_NAMES["progress"]: progress,
        MEMBER_STATE_NAMES["completions"]: data.get("completions", {}),
    }
    return msgspec.convert(plain, MemberState)


def _short_names(fields: dict[str, Any]) -> dict[str, Any]:
    short = {PROGRESS_NAMES[name]: value for name, value in fields.items() if name in PROGRESS_NAMES}
    if isinstance(carry := fields.get("carry"), dict):
        short[PROGRESS_NAMES["carry"]] = {STREAK_CARRY_NAMES[n]: v for n, v in carry.items() if n in STREAK_CARRY_NAMES}
    return short


def _with_identity(key: str, instances: dict[str, Progress]) -> dict[str, Progress]:
    # Stored progress leaves out its challenge and instance (the keys say them); freshly decoded values
    # are seen by no one else yet, so they are completed in place rather than copied.
    for instance, progress in instances.items():
        if progress.challenge != key:
            msgspec.structs.force_setattr(progress, "challenge", key)
        if progress.instance != instance:
            msgspec.structs.force_setattr(progress, "instance", instance)
    return instances


def _without_identity(instances: Mapping[str, Progress]) -> dict[str, Progress]:
    return {
        instance: msgspec.structs.replace(progress, challenge="", instance="")
        if progress.challenge or progress.instance
        else progress
        for instance, progress in instances.items()
    }


def decode_state(text: str | bytes | None) -> MemberState:
    """A stored member state (an empty one for ``None``)."""
    if not text:
        return MemberState()
    state = _state_decoder.decode(text) if _current(text) else _from_legacy(text)
    for key, instances in state.progress.items():
        _with_identity(key, instances)
    return state


def encode_state(state: MemberState | EncodedState) -> str:
    """The stored form of a member state."""
    if isinstance(state, MemberState):
        state = MemberState(
            progress={key: _without_identity(instances) for key, instances in state.progress.items()},
            completions=state.completions,
        )
    return _state_encoder.encode(state).decode()


def encode_state_parts(
    progress: Mapping[str, msgspec.Raw | Mapping[str, Progress]], completions: Mapping[str, int]
) -> str:
    """The stored form of a state whose challenges are part still encoded (as loaded), part decoded (changed).

    The same JSON as :func:`encode_state`, in one encoder call: the pipeline saves a state per member it
    touched, and encoding each changed challenge on its own would cost a call per challenge.
    """
    document: dict[str, Any] = {"format": STATE_FORMAT}
    if progress:
        document[MEMBER_STATE_NAMES["progress"]] = progress
    if completions:
        document[MEMBER_STATE_NAMES["completions"]] = completions
    return _state_encoder.encode(document).decode()


def decode_encoded_state(text: str | bytes) -> EncodedState:
    """A stored member state with each challenge's instances left encoded."""
    if _current(text):
        return _encoded_state_decoder.decode(text)
    legacy = _from_legacy(text)
    return EncodedState(
        progress={key: encode_instances(_without_identity(instances)) for key, instances in legacy.progress.items()},
        completions=legacy.completions,
    )


def decode_instances(raw: msgspec.Raw) -> dict[str, Progress]:
    """One challenge's instances from an :class:`EncodedState` (a fresh map the caller may change).

    The values carry no identity (``challenge`` and ``instance`` are empty): the pipeline, which alone
    reads progress this way, knows both from the keys and saves a copy per value.
    """
    return _instances_decoder.decode(raw)


def encode_instances(instances: Mapping[str, Progress]) -> msgspec.Raw:
    """One challenge's instances in their stored form, to put back into an :class:`EncodedState`.

    Values should carry no identity (as :func:`decode_instances` gives them); one that does is stored
    with it, which costs a few bytes and reads back the same.
    """
    return msgspec.Raw(_state_encoder.encode(instances))
