-- Create a job unless it exists, refusing when the unfinished set is full.
-- KEYS[1]: the job hash; KEYS[2]: the set of unfinished job ids.
-- ARGV[1]: job id; ARGV[2]: max unfinished (-1: no limit); ARGV[3..]: field, value pairs.
-- Returns {1} when created, {0, field, value, …} when it existed, {-1, count} when full.
if redis.call('EXISTS', KEYS[1]) == 1 then
  local existing = redis.call('HGETALL', KEYS[1])
  table.insert(existing, 1, 0)
  return existing
end
local limit = tonumber(ARGV[2])
local unfinished = redis.call('SCARD', KEYS[2])
if limit >= 0 and unfinished >= limit then
  return {-1, unfinished}
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('SADD', KEYS[2], ARGV[1])
return {1}
