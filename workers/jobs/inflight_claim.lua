-- inflight_claim.lua: claim the questions a part is about to send, all or none, unless another job asks them now.
--
-- A question (a contact's identity with the options that change the answer) is claimed by the job
-- whose batch asks the API. A job that finds one of its questions claimed by another job waits for
-- that answer (it comes through the result cache) instead of paying for it again; it claims nothing
-- while it waits, so two jobs never wait for each other.
--
-- KEYS[1..] the questions' claim keys   dropq:inflight:{digest}
-- ARGV[1] the job id
-- ARGV[2] claim TTL, milliseconds (a claim whose batch is lost frees itself)
-- ARGV[3] "1": wait when another job holds one (claim nothing then); "0": claim the free ones only
-- Returns 0 when the part may go on (its free questions claimed), else the longest TTL left of the
-- other jobs' claims, milliseconds.

if ARGV[3] == '1' then
  local wait = 0
  for _, key in ipairs(KEYS) do
    local holder = redis.call('GET', key)
    if holder and holder ~= ARGV[1] then
      wait = math.max(wait, redis.call('PTTL', key), 1)
    end
  end
  if wait > 0 then
    return wait
  end
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'PX', tonumber(ARGV[2]), 'NX')
end
return 0
