-- list_by_user: ListSessions of one user, newest first, 100 per page.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local reqs, i = {}, 0
function init(args)
  for _, row in ipairs(load_rows(args[1], tonumber(args[3]))) do
    reqs[#reqs + 1] = connect_call("/zitadel.session.v2.SessionService/ListSessions", args[2],
      '{"query":{"limit":100},"queries":[{"userIdQuery":{"id":"' .. row[1] .. '"}}],"sortingColumn":"SESSION_FIELD_NAME_CREATION_DATE"}')
  end
end
function request() i = i % #reqs + 1; return reqs[i] end
