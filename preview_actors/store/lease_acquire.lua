-- Take a named lease when it is free (SET NX PX), or renew it when the caller holds it.
-- KEYS[1]: the lease key; ARGV[1]: owner; ARGV[2]: time to live, milliseconds.
-- Returns 1 when ARGV[1] holds the lease now, 0 when another owner does.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
