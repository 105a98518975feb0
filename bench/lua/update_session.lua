-- update_session: SetSession with a changed metadata value (a write that rotates the token).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local ids, i, n, bearer = {}, 0, 0, nil
function init(args)
  for _, row in ipairs(load_rows(args[1], tonumber(args[3]))) do ids[#ids + 1] = row[1] end
  bearer = args[2]
end
function request()
  i = i % #ids + 1
  n = n + 1
  return connect_call("/zitadel.session.v2.SessionService/SetSession", bearer,
    '{"sessionId":"' .. ids[i] .. '","metadata":{"bench":"' .. base64(tid .. "-" .. n) .. '"}}')
end
