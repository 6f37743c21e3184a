"""Every Redis key and channel of the leaderboards, in one module.

Every key of a brand carries the Redis Cluster hash tag ``{b<brand_id>}``: all its boards, periods and
scopes, its member directory, sentinels, rebuild lock and rebuild log hash to one slot. A board's read
script reads the brand's directory (one copy per brand, not one per board), and a write's ``MULTI``
covers the brand's sentinel, its rebuild log, the directory and the standings: in a cluster each of
those must sit in one slot, so the tag is the brand's and never the board's. Brands spread over the
shards; one brand lives on one shard. Everything starts with the deployment's ``redis_namespace``::

    <ns>:lb:{b7}:b:weekly-points:z:2026-W47               standings (sorted set) of one period
    <ns>:lb:{b7}:b:by-store:z:2026-W47:milano-centro      … of one scope value (percent-encoded)
    <ns>:lb:{b7}:b:weekly-dense:d:2026-W47                distinct scores of a dense board (sorted set)
    <ns>:lb:{b7}:b:weekly-dense:c:2026-W47                how many members hold each score (hash)
    <ns>:lb:{b7}:b:weekly-points:ready                    sentinel: this board was rebuilt here
    <ns>:lb:{b7}:ids                                      external id → member id, whole brand (hash)
    <ns>:lb:{b7}:people                                   member id → what boards show of them (hash)
    <ns>:lb:{b7}:ready                                    sentinel: the brand's boards were rebuilt here
    <ns>:lb:{b7}:rebuilding                               lock while a worker rebuilds the brand
    <ns>:lb:{b7}:log                                      what writers changed while a rebuild runs (list)
    <ns>:lb:live:b7:weekly-points                         pub/sub channel of rank changes
"""

from __future__ import annotations

from urllib.parse import quote

STANDINGS = "z"
DISTINCT = "d"
COUNTS = "c"
READY = "ready"


def tag(brand_id: int) -> str:
    """The brand's Redis Cluster hash tag: every key of the brand's boards is in its slot."""
    return f"{{b{brand_id}}}"


def _board(namespace: str, brand_id: int, board: str) -> str:
    return f"{namespace}:lb:{tag(brand_id)}:b:{board}"


def _suffix(period: str, scope: str) -> str:
    return f"{period}:{quote(scope, safe='')}" if scope else period


def standings(namespace: str, brand_id: int, board: str, period: str, scope: str = "") -> str:
    """The sorted set of one period (and scope value) of a board."""
    return f"{_board(namespace, brand_id, board)}:{STANDINGS}:{_suffix(period, scope)}"


def distinct_scores(namespace: str, brand_id: int, board: str, period: str, scope: str = "") -> str:
    """The sorted set of distinct scores of a dense board's period (for dense ranks in O(log N))."""
    return f"{_board(namespace, brand_id, board)}:{DISTINCT}:{_suffix(period, scope)}"


def score_counts(namespace: str, brand_id: int, board: str, period: str, scope: str = "") -> str:
    """The hash score → number of members holding it, beside :func:`distinct_scores`."""
    return f"{_board(namespace, brand_id, board)}:{COUNTS}:{_suffix(period, scope)}"


def member_ids(namespace: str, brand_id: int) -> str:
    """The brand's hash external id → internal member id of every member holding a total on one of its boards."""
    return f"{namespace}:lb:{tag(brand_id)}:ids"


def people(namespace: str, brand_id: int) -> str:
    """The brand's hash member id → what boards show of them (see :data:`leaderboards.slots.PERSON`)."""
    return f"{namespace}:lb:{tag(brand_id)}:people"


def board_ready(namespace: str, brand_id: int, board: str) -> str:
    """The board's sentinel, in the brand's slot so a read script can check it (gone after a flush)."""
    return f"{_board(namespace, brand_id, board)}:{READY}"


def temporary(key: str, token: str) -> str:
    """A scratch key in the same slot as ``key`` (a rebuild fills it, then renames it over ``key``)."""
    return f"{key}:tmp:{token}"


def board_pattern(namespace: str, brand_id: int, board: str) -> str:
    """A SCAN pattern matching every key of one board."""
    return f"{_board(namespace, brand_id, board)}:*"


def brand_pattern(namespace: str, brand_id: int) -> str:
    """A SCAN pattern matching every board key of a brand (not its directory, sentinel, lock or log)."""
    return f"{namespace}:lb:{tag(brand_id)}:b:*"


def namespace_pattern(namespace: str) -> str:
    """A SCAN pattern matching every leaderboard key of the deployment."""
    return f"{namespace}:lb:*"


def ready(namespace: str, brand_id: int) -> str:
    """The brand's sentinel: present once its boards were rebuilt into this Redis (gone after a flush)."""
    return f"{namespace}:lb:{tag(brand_id)}:ready"


def rebuild_lock(namespace: str, brand_id: int) -> str:
    """A short-lived lock so one worker at a time rebuilds a brand."""
    return f"{namespace}:lb:{tag(brand_id)}:rebuilding"


def rebuild_log(namespace: str, brand_id: int) -> str:
    """The list of what writes changed while a rebuild of the brand runs (appended with ``RPUSHX``)."""
    return f"{namespace}:lb:{tag(brand_id)}:log"


def live_channel(namespace: str, brand_id: int, board: str) -> str:
    """The pub/sub channel where a board's rank changes are published (JSON, see docs/leaderboards.md)."""
    return f"{namespace}:lb:live:b{brand_id}:{board}"
