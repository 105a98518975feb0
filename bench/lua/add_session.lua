-- add_session: CreateSession with checks.user.userId only, called by a service user (PAT).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local reqs, i = {}, 0
function init(args)
  for _, row in ipairs(load_rows(args[1], tonumber(args[3]))) do
    reqs[#reqs + 1] = connect_call("/zitadel.session.v2.SessionService/CreateSession", args[2],
      '{"checks":{"user":{"userId":"' .. row[1] .. '"}}}')
  end
end
function request() i = i % #reqs + 1; return reqs[i] end
