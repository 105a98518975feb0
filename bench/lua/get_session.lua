-- get_session: GetSession with the session's token, called by a service user (PAT).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local reqs, i = {}, 0
function init(args)
  for _, row in ipairs(load_rows(args[1], tonumber(args[3]))) do
    reqs[#reqs + 1] = connect_call("/zitadel.session.v2.SessionService/GetSession", args[2],
      '{"sessionId":"' .. row[1] .. '","sessionToken":"' .. row[2] .. '"}')
  end
  if args[4] then
    local pause = tonumber(args[4])
    function delay() return pause end  -- a paced probe, not a load (see password_session)
  end
end
function request() i = i % #reqs + 1; return reqs[i] end
