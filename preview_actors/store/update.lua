-- Update a job's fields unless it is finished (or ARGV[2] allows it), keeping
-- the set of unfinished job ids in step with the new state.
-- KEYS[1]: the job hash; KEYS[2]: the set of unfinished job ids.
-- ARGV[1]: job id; ARGV[2]: '1' to allow updating a finished job; ARGV[3]: '1' to begin a
-- new render attempt as well; ARGV[4]: the most attempts the job's budget allows ('-1': no
-- limit); ARGV[5..]: field, value pairs.
-- Beginning an attempt changes nothing when the job's render is done (hashing, finalizing),
-- and nothing either, answering 'exhausted', when attempts - attempt_base reached ARGV[4].
-- Returns {} when the job is unknown, else 'ok' or 'exhausted' followed by the job's fields
-- after the update.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
local function answer(status)
  local fields = redis.call('HGETALL', KEYS[1])
  table.insert(fields, 1, status)
  return fields
end
local terminal = {succeeded = true, failed = true, cancelled = true}
local state = redis.call('HGET', KEYS[1], 'state')
if terminal[state] and ARGV[2] ~= '1' then
  return answer('ok')
end
if ARGV[3] == '1' then
  if state == 'hashing' or state == 'finalizing' then
    return answer('ok')
  end
  local limit = tonumber(ARGV[4])
  local used = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
    - tonumber(redis.call('HGET', KEYS[1], 'attempt_base') or '0')
  if limit >= 0 and used >= limit then
    return answer('exhausted')
  end
  redis.call('HINCRBY', KEYS[1], 'attempts', 1)
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
if terminal[redis.call('HGET', KEYS[1], 'state')] then
  redis.call('SREM', KEYS[2], ARGV[1])
else
  redis.call('SADD', KEYS[2], ARGV[1])
end
return answer('ok')
