-- Extend our lease on a render slot.
-- KEYS[1]: the sorted set of holders; ARGV[1]: lease length (ms); ARGV[2]: our holder id.
-- Returns 1 when renewed, 0 when the lease was lost (it expired and was dropped).
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local changed = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return changed
