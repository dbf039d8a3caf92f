-- inflight_release.lua: free the questions of a closed batch (their answers are in the cache, or failed).
--
-- KEYS[1..] the questions' claim keys   dropq:inflight:{digest}
-- ARGV[1] the job id: only its own claims are freed
-- Returns how many were freed.

local freed = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    freed = freed + 1
  end
end
return freed
