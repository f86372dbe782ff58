-- Take a render slot: drop expired leases, then add ours if fewer than the limit are held.
-- KEYS[1]: the sorted set of holders scored by lease expiry (ms, Redis clock).
-- ARGV[1]: lease length (ms); ARGV[2]: the limit; ARGV[3]: our holder id.
-- Returns 1 when taken, 0 when all slots are held.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
  return 1
end
return 0
