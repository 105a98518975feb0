-- password_session: CreateSession with checks.user.loginName, then SetSession with checks.password.
-- wrk keeps Lua state per thread, not per connection: created session IDs wait in a queue and
-- the next request of any connection of the thread checks the password on one of them.
-- One iteration = one successful SetSession.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local users, pending, i, bearer, password = {}, {}, 0, nil, nil
function init(args)
  for _, row in ipairs(load_rows(args[1], tonumber(args[3]))) do users[#users + 1] = row[2] end
  bearer, password = args[2], args[4]
end
function request()
  local sid = table.remove(pending)
  if sid then
    return connect_call("/zitadel.session.v2.SessionService/SetSession", bearer,
      '{"sessionId":"' .. sid .. '","checks":{"password":{"password":"' .. password .. '"}}}')
  end
  i = i % #users + 1
  return connect_call("/zitadel.session.v2.SessionService/CreateSession", bearer,
    '{"checks":{"user":{"loginName":"' .. users[i] .. '"}}}')
end
function response(status, headers, body)
  if status ~= 200 then return end
  local sid = body:match('"sessionId"%s*:%s*"(%d+)"')
  if sid then pending[#pending + 1] = sid else iterations = iterations + 1 end
end
