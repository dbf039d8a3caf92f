-- parked_parts.lua: park an input part that came before its turn; find the parked part whose turn has come.
--
-- A part's turn comes when every input index before its offset is produced
-- (the unbroken run of produced ranges from index 0 reaches it). Parking and
-- the look for the next part both read that run inside the script, so a part
-- is either parked before the part ahead of it is marked produced (and that
-- part's producer finds it here) or sees its turn has come and is not parked.
--
-- KEYS[1] produced parts sorted set dropq:job-produced:{job}  (member "start:end", score start)
-- KEYS[2] parked parts hash         dropq:job-parked:{job}    (offset -> JSON {"n": contacts, "part_id", "contacts"})
-- KEYS[3] job ledger hash           dropq:job:{job}           (field "parked": contacts parked, for flow control)
-- ARGV[1] "park", "hold" or "produced"
-- "park":     ARGV[2] offset, ARGV[3] the part's JSON, ARGV[4] TTL, seconds
--             Returns 1 when parked, 0 when its turn has come (nothing stored).
-- "hold":     the same, whatever its turn (a part in its turn that waits for answers in flight): returns 1.
-- "produced": ARGV[2] the offset of the part just produced (no longer parked, if it was)
--             Returns the offset of the parked part whose turn has come, or -1.
-- TTL: the hash's, refreshed on each park; produced parts are removed from it.

local function produced_through()
  local covered = 0
  for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local sep = string.find(member, ':', 1, true)
    local start = tonumber(string.sub(member, 1, sep - 1))
    if start > covered then
      break
    end
    covered = math.max(covered, tonumber(string.sub(member, sep + 1)))
  end
  return covered
end

-- The contacts of a parked part, from the head of its JSON (written by ParkedParts, "n" first).
local function contacts_in(raw)
  if not raw then
    return 0
  end
  return tonumber(string.match(raw, '^{"n":(%d+),')) or 0
end

-- The ledger counts parked contacts while it exists (no script recreates a job that is gone).
local function count_parked(delta)
  if delta ~= 0 and redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('HINCRBY', KEYS[3], 'parked', delta)
  end
end

if ARGV[1] == 'park' or ARGV[1] == 'hold' then
  if ARGV[1] == 'park' and tonumber(ARGV[2]) <= produced_through() then
    return 0
  end
  local before = contacts_in(redis.call('HGET', KEYS[2], ARGV[2]))
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
  count_parked(contacts_in(ARGV[3]) - before)
  return 1
end

count_parked(-contacts_in(redis.call('HGET', KEYS[2], ARGV[2])))
redis.call('HDEL', KEYS[2], ARGV[2])
local through = produced_through()
if redis.call('HEXISTS', KEYS[2], string.format('%d', through)) == 1 then
  return through
end
return -1
