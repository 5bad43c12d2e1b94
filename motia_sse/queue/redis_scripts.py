"""The Lua scripts the Redis queue runs: each a step that must not be seen half done."""

# Move due retries back to their streams, atomically, so two processes cannot both.
PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(due) do
    local stream, fields = string.match(member, '^([^\\n]*)\\n(.*)$')
    redis.call('XADD', stream, '*', 'd', fields)
    redis.call('ZREM', KEYS[1], member)
end
return #due
"""

# Queue a grouped event; the first of an empty line also gets the line's token.
PUT_GROUPED = """
if redis.call('RPUSH', KEYS[1], ARGV[1]) == 1 then
    redis.call('XADD', KEYS[2], '*', 'd', ARGV[2])
end
"""

# The line's head (ARGV[1] its id) is settled: pop it, and give the next head a token.
ADVANCE = """
local head = redis.call('LINDEX', KEYS[1], 0)
if not head or string.sub(head, 1, #ARGV[1] + 1) ~= ARGV[1] .. '\\n' then
    return 0
end
redis.call('LPOP', KEYS[1])
local next = redis.call('LINDEX', KEYS[1], 0)
if next then
    local id = string.match(next, '^([^\\n]*)\\n')
    redis.call('XADD', KEYS[2], '*', 'd', cjson.encode({s = ARGV[2], g = ARGV[3], i = id,
                                                        a = 1}))
end
return 1
"""

# The consumer ARGV[2] still holds entry ARGV[3]: claim it again, which restarts its idle
# time. Checked in the script, so a renewal never takes back an entry another process
# has taken over meanwhile.
EXTEND = """
local held = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #held == 0 then
    return 0
end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""
