"""Every Redis key and pub/sub channel outside the leaderboards, in one module (those are in ``leaderboards.keys``).

Everything starts with the deployment's ``redis_namespace``; keys of one brand carry the Redis Cluster hash
tag ``{b<brand_id>}``::

    <ns>:live:{b7}                         pub/sub: any change of the brand's members ("something changed")
    <ns>:live:{b7}:m:42                    pub/sub: a change of member 42 (the portal and member widgets listen)
    <ns>:console:session:<sha256>          a console sign-in session (the token's digest → admin id)
    <ns>:console:failures:<sha256>         failed sign-ins of one email address in the current window
    <ns>:ratelimit:{b7}:k:12               the API rate limit's token bucket of key 12 (hash: tokens, ts)
"""

from __future__ import annotations


def member_channel(namespace: str, brand_id: int, member_id: int) -> str:
    """The channel on which a member's changes are announced."""
    return f"{namespace}:live:{{b{brand_id}}}:m:{member_id}"


def brand_channel(namespace: str, brand_id: int) -> str:
    """The channel on which any change of the brand's members is announced."""
    return f"{namespace}:live:{{b{brand_id}}}"


def console_session(namespace: str, digest: str) -> str:
    """A console session, by the SHA-256 hex digest of its token."""
    return f"{namespace}:console:session:{digest}"


def sign_in_failures(namespace: str, digest: str) -> str:
    """The failed sign-in counter of an email address, by the SHA-256 hex digest of the normalised address."""
    return f"{namespace}:console:failures:{digest}"


def rate_limit_bucket(namespace: str, brand_id: int, key_id: int) -> str:
    """The token bucket of one API key (a hash: ``tokens``, ``ts``), under the brand's hash tag."""
    return f"{namespace}:ratelimit:{{b{brand_id}}}:k:{key_id}"
