-- noop: the framework ceiling, as the spec defines it: the cheapest authenticated Connect call.
-- SettingsService/GetGeneralSettings over Connect JSON with the service user's PAT: the whole HTTP
-- and Connect stack plus one PAT authentication (a database read) and a permission check; the
-- answer itself needs no database work.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local req
function init(args) req = connect_call("/zitadel.settings.v2.SettingsService/GetGeneralSettings", args[2], "{}") end
function request() return req end
