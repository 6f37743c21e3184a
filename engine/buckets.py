"""Token buckets in Redis: the Lua that takes tokens, and a charge a read script can take in its own call.

The API's rate limit (:mod:`web.ratelimit`) keeps one bucket per key, a hash (``tokens``, ``ts``) under
the brand's hash tag. :data:`TAKE_FUNCTION` is the Lua that refills and takes, at Redis time;
:data:`TAKE_SCRIPT` runs it alone. A script that reads the brand's keys can run it first, in the same
``EVALSHA`` (the bucket is in the brand's slot, so this holds on a cluster too): the request then costs one
round trip instead of two, and a refused request reads nothing. :class:`Charge` is such a pending take,
filled in with the bucket's answer by whoever ran it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: ``take(bucket, rate, burst, cost)``: refill ``bucket`` at ``rate`` tokens/s up to ``burst``, then take
#: ``cost`` if there are that many. Returns ``{allowed (0/1), tokens left (as a string)}``.
TAKE_FUNCTION = """
local function take(bucket, rate, burst, cost)
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
  local state = redis.call('HMGET', bucket, 'tokens', 'ts')
  local tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if tokens == nil or ts == nil then
    tokens = burst
    ts = now
  end
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
  local allowed = 0
  if tokens >= cost then
    tokens = tokens - cost
    allowed = 1
  end
  redis.call('HSET', bucket, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', bucket, math.ceil(burst / rate * 1000) + 1000)
  return {allowed, tostring(tokens)}
end
"""

#: Take ``ARGV[3]`` tokens from the bucket ``KEYS[1]`` (refill ``ARGV[1]``/s, size ``ARGV[2]``) at Redis time.
TAKE_SCRIPT = TAKE_FUNCTION + "return take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))\n"


@dataclass(slots=True)
class Charge:
    """One token a script takes from ``bucket`` before it reads; ``allowed`` stays ``None`` until it ran."""

    bucket: str
    rate: float
    burst: int
    allowed: bool | None = None
    remaining: float = 0.0

    def settle(self, allowed: object, tokens: object) -> None:
        """Record the bucket's answer (the two first items of the script's reply)."""
        self.allowed = int(allowed) == 1  # type: ignore[call-overload]
        self.remaining = float(tokens)  # type: ignore[arg-type]


class Refused(Exception):
    """The charge found the bucket empty: the script read nothing."""

    def __init__(self, charge: Charge) -> None:
        super().__init__(f"the bucket {charge.bucket} is empty")
        self.charge = charge
