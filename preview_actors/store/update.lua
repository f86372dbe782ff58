-- Update a job's fields unless it is finished (or ARGV[2] allows it), keeping
-- the set of unfinished job ids in step with the new state.
-- KEYS[1]: the job hash; KEYS[2]: the set of unfinished job ids.
-- ARGV[1]: job id; ARGV[2]: '1' to allow updating a finished job; ARGV[3]: '1' to count a
-- new render attempt as well; ARGV[4..]: field, value pairs.
-- Returns the job's fields after the update (empty when the job is unknown).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
local terminal = {succeeded = true, failed = true, cancelled = true}
if terminal[redis.call('HGET', KEYS[1], 'state')] and ARGV[2] ~= '1' then
  return redis.call('HGETALL', KEYS[1])
end
if ARGV[3] == '1' then
  redis.call('HINCRBY', KEYS[1], 'attempts', 1)
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
if terminal[redis.call('HGET', KEYS[1], 'state')] then
  redis.call('SREM', KEYS[2], ARGV[1])
else
  redis.call('SADD', KEYS[2], ARGV[1])
end
return redis.call('HGETALL', KEYS[1])
