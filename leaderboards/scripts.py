"""The store's Lua: the one-round-trip board read, the directory lookup and the writes' announcement.

A read is one script (:data:`READ_SCRIPT`) over the board's keys and the brand's directory (one hash
tag, so Cluster-safe):
the top page, the member's rank and ±k window, friends' ranks, every rank by the board's tie policy and
the labels, in one consistent snapshot; :func:`decode_read` turns a reply into a
:class:`~leaderboards.slots.Snapshot`. How the calls are sent: :mod:`leaderboards.script_batch`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.buckets import TAKE_FUNCTION
from leaderboards import ranking
from leaderboards.models import Placed
from leaderboards.slots import Snapshot, shown

if TYPE_CHECKING:
    from collections.abc import Sequence

    from leaderboards.models import BoardDef, PeriodRef
    from leaderboards.slots import Slot

# Scores are compared and counted as the strings Redis formats them in (exact, 17 significant digits),
# never as Lua numbers, which would print a large score with 14 digits only.
READ_SCRIPT = """
if redis.call('EXISTS', KEYS[5]) == 0 then return {0} end
local z, dz, ids, names = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local offset, limit, k, ties = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local total = redis.call('ZCARD', z)
local wanted, shown = {}, 0

local function better(score)
  if ties == 'dense' then return redis.call('ZCOUNT', dz, '(' .. score, '+inf') end
  return redis.call('ZCOUNT', z, '(' .. score, '+inf')
end

local function rank_of(position, score)
  if ties == 'first_to_reach' or position == 0 then return position + 1 end
  return better(score) + 1
end

-- Ranks of ZRANGE … WITHSCORES rows read from position start: at most one count per window, the
-- rest follows from the scores (competition: position + 1 after a change; dense: + 1 per change).
local function ranks_of(rows, start)
  local ranks, n, previous, rank = {}, 0, nil, 0
  for i = 1, #rows, 2 do
    local score = rows[i + 1]
    if ties == 'first_to_reach' or previous == nil then
      rank = rank_of(start + n, score)
    elseif score ~= previous then
      if ties == 'dense' then rank = rank + 1 else rank = start + n + 1 end
    end
    n = n + 1
    ranks[n] = rank
    previous = score
    shown = shown + 1
    wanted[shown] = rows[i]
  end
  return ranks
end

local page = {}
if limit > 0 then page = redis.call('ZRANGE', z, offset, offset + limit - 1, 'REV', 'WITHSCORES') end
local page_ranks = ranks_of(page, offset)

local me, around, around_ranks, start = {}, {}, {}, 0
if ARGV[5] ~= '' then
  local member = redis.call('HGET', ids, ARGV[5])
  if member then
    me = {member}
    local position = redis.call('ZREVRANK', z, member)
    if position then
      local score = redis.call('ZSCORE', z, member)
      local rank
      if k > 0 then
        local size = math.min(2 * k + 1, total)
        start = math.max(0, math.min(position - k, total - size))
        around = redis.call('ZRANGE', z, start, start + size - 1, 'REV', 'WITHSCORES')
        around_ranks = ranks_of(around, start)
        rank = around_ranks[position - start + 1]
      else
        rank = rank_of(position, score)
      end
      me = {member, score, rank, position}
    end
    shown = shown + 1
    wanted[shown] = member
  end
end

local friends = {}
for i = 6, #ARGV do
  local member = redis.call('HGET', ids, ARGV[i])
  if member then
    local position = redis.call('ZREVRANK', z, member)
    if position then
      local score = redis.call('ZSCORE', z, member)
      friends[#friends + 1] = {i - 5, member, score, rank_of(position, score), position}
      shown = shown + 1
      wanted[shown] = member
    end
  end
end

local labels = {}
if shown > 0 then labels = redis.call('HMGET', names, unpack(wanted)) end
return {1, total, page, page_ranks, me, start, around, around_ranks, friends, labels}
"""
GATED_READ_SCRIPT = (
    TAKE_FUNCTION
    + "local function read(KEYS, ARGV)\n"
    + READ_SCRIPT
    + """end
local bucket = table.remove(KEYS)
local taken = take(bucket, tonumber(ARGV[1]), tonumber(ARGV[2]), 1)
if taken[1] == 0 then return taken end
return {1, taken[2], read(KEYS, {unpack(ARGV, 3)})}
"""
)
""":data:`READ_SCRIPT` behind a token bucket (:data:`engine.buckets.TAKE_FUNCTION`), in one call.

``KEYS``: the read's five, then the bucket (the brand's hash tag: the same slot). ``ARGV``: the bucket's
rate and burst, then the read's. Replies ``{0, tokens}`` when the bucket is empty (nothing is read), else
``{1, tokens, <the read's reply>}``.
"""
FIND_SCRIPT = """
local member = redis.call('HGET', KEYS[1], ARGV[1])
if not member then return {} end
return {member, redis.call('HGET', KEYS[2], member)}
"""
ANNOUNCE_SCRIPT = """
local n = tonumber(ARGV[1])
local ranks, totals = {}, {}
for i = 1, n do
  local how = ARGV[1 + i]
  local arg = string.sub(how, 2)
  if string.sub(how, 1, 1) == 'r' then
    local position = redis.call('ZREVRANK', KEYS[2 * i - 1], arg)
    ranks[i] = position and position + 1 or -1
  else
    ranks[i] = redis.call('ZCOUNT', KEYS[2 * i - 1], '(' .. arg, '+inf') + 1
  end
  totals[i] = redis.call('ZCARD', KEYS[2 * i])
end
local out = {}
for i = 1, n do out[i] = ranks[i]; out[n + i] = totals[i] end
local at = n + 2
while at <= #ARGV do
  local channel, k = ARGV[at], tonumber(ARGV[at + 1])
  local parts, sent = {ARGV[at + 2 + k]}, 1
  for j = 1, k do
    local i = tonumber(ARGV[at + 1 + j])
    if ranks[i] < 0 then sent = 0 end
    parts[4 * j - 2] = string.format('%d', ranks[i])
    parts[4 * j - 1] = ARGV[at + 2 + k + 2 * j - 1]
    parts[4 * j] = string.format('%d', totals[i])
    parts[4 * j + 1] = ARGV[at + 2 + k + 2 * j]
  end
  if sent == 1 then redis.call('PUBLISH', channel, table.concat(parts)) end
  out[#out + 1] = sent
  at = at + 3 + 3 * k
end
return out
"""
"""Read the rank and board size of written members, and publish the live messages made of them.

``KEYS[2i-1]``: what the i-th rank is read from (the standings, or a dense board's distinct scores);
``KEYS[2i]``: the standings, whose size is the board's. ``ARGV[1]``: the number of ranks *n*; ``ARGV[1+i]``:
``r<member>`` (its reverse rank) or ``c<value>`` (the count of better values). Then, per message: the
channel, its number of changes *k*, the *k* indexes of the ranks it shows, and its 2*k* + 1 parts: the
message is part 0, rank, part 1, total, part 2, rank, … (:class:`leaderboards.live.LiveMessage`). Replies
the *n* ranks (``-1`` for a member not on the board), the *n* sizes and, per message, 1 if it was published
(0 when one of its members was not on the board: the caller publishes what is left of it).
"""


def decode_read(slot: Slot, reply: Sequence[Any], *, offset: int, friends: Sequence[str]) -> Snapshot | None:
    """The snapshot a :data:`READ_SCRIPT` reply stands for (``None``: the board's sentinel is missing)."""
    if not reply[0]:
        return None
    _ready, total, page, page_ranks, me, start, around_rows, around_ranks, placed_friends, labels = reply
    board, period = slot.board, slot.period
    snapshot = Snapshot(ready=True, total=int(total))
    snapshot.page = placed_rows(board, period, page, page_ranks, offset)
    snapshot.around = placed_rows(board, period, around_rows, around_ranks, int(start))
    # The labels come in the order the script met the members: page, around, the member, friends.
    met = [p.member_id for p in snapshot.page] + [p.member_id for p in snapshot.around]
    if me:
        snapshot.me_id = int(me[0])
        met.append(snapshot.me_id)
        if len(me) > 1:
            snapshot.me = Placed(
                member_id=snapshot.me_id,
                position=int(me[3]),
                rank=int(me[2]),
                units=ranking.units_from_score(board, period, float(me[1])),
            )
    for index, member_id, score, rank, position in placed_friends:
        found = Placed(
            member_id=int(member_id),
            position=int(position),
            rank=int(rank),
            units=ranking.units_from_score(board, period, float(score)),
        )
        snapshot.friends[friends[int(index) - 1]] = found
        met.append(found.member_id)
    listings = snapshot.listings
    for member_id, raw in zip(met, labels, strict=True):
        if raw is not None and member_id not in listings:
            listings[member_id] = shown(board, slot.brand_id, member_id, raw)
    return snapshot


def _whole(score: bytes | str) -> int:
    """A whole score as Redis writes it: digits (``int`` reads them at half ``float``'s cost), or an exponent."""
    try:
        return int(score)
    except ValueError:  # Redis writes doubles of 1e17 and more with an exponent ("1.0000000000000000e+17")
        return int(float(score))


def placed_rows(
    board: BoardDef, period: PeriodRef, rows: Sequence[Any], ranks: Sequence[int], start: int
) -> list[Placed]:
    """``ZRANGE … WITHSCORES`` rows read from position ``start``, with the ranks the read script gave them."""
    positions = range(start, start + len(ranks))
    if board.ties == "first_to_reach":
        return [
            Placed(
                member_id=int(member),
                position=position,
                rank=rank,
                units=ranking.units_from_score(board, period, float(score)),
            )
            for position, member, score, rank in zip(positions, rows[0::2], rows[1::2], ranks, strict=True)
        ]
    sign = 1 if board.order == "desc" else -1  # the score is the signed units themselves
    return [
        Placed(member_id=int(member), position=position, rank=rank, units=sign * _whole(score))
        for position, member, score, rank in zip(positions, rows[0::2], rows[1::2], ranks, strict=True)
    ]
