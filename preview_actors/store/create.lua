-- Create a job unless it exists, refusing when the unfinished set is full; with a
-- message, also enqueue the job's first message in the same step (broker and
-- store on one Redis: see preview_actors/submit_redis.py).
-- KEYS[1]: the job hash; KEYS[2]: the set of unfinished job ids; with a message,
-- KEYS[3]: the queue's list of message ids and KEYS[4]: the queue's hash of
-- message data (dramatiq's layout, see dramatiq/brokers/redis/dispatch.lua).
-- ARGV[1]: job id; ARGV[2]: max unfinished (-1: no limit); ARGV[3]: the request's
-- content sha256; ARGV[4]: the job's fields as one JSON object of strings (one
-- argument rather than thirty: redis-py packs each one in Python); with a message,
-- ARGV[5]: its redis id and ARGV[6]: the encoded message.
-- Returns {1, unfinished} when created (and enqueued); {2, unfinished, field, value, …}
-- when, with a message, the job existed with this content but had never been
-- enqueued, and now is; {0, field, value, …} when it existed otherwise (nothing
-- done); {-1, unfinished} when the unfinished set is full.
local with_message = #KEYS == 4

local function enqueue()
  redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])
  redis.call('RPUSH', KEYS[3], ARGV[5])
end

if redis.call('EXISTS', KEYS[1]) == 1 then
  if with_message and redis.call('HGET', KEYS[1], 'enqueued') == '0'
      and redis.call('HGET', KEYS[1], 'content_sha256') == ARGV[3] then
    enqueue()
    redis.call('HSET', KEYS[1], 'enqueued', '1')
    local existing = redis.call('HGETALL', KEYS[1])
    table.insert(existing, 1, redis.call('SCARD', KEYS[2]))
    table.insert(existing, 1, 2)
    return existing
  end
  local existing = redis.call('HGETALL', KEYS[1])
  table.insert(existing, 1, 0)
  return existing
end
local limit = tonumber(ARGV[2])
local unfinished = redis.call('SCARD', KEYS[2])
if limit >= 0 and unfinished >= limit then
  return {-1, unfinished}
end
local fields = {}
for name, value in pairs(cjson.decode(ARGV[4])) do
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('SADD', KEYS[2], ARGV[1])
if with_message then
  enqueue()
end
return {1, unfinished + 1}
