-- noop: the framework ceiling. grpc.health.v1.Health/Check over Connect JSON: the whole HTTP and
-- Connect stack plus one database round trip (about what authenticating a PAT costs), no handler work.
-- The service user's PAT is sent as with every other call (health checks ignore it).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local req
function init(args) req = connect_call("/grpc.health.v1.Health/Check", args[2], "{}") end
function request() return req end
