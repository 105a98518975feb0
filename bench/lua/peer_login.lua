-- peer password_session: fastapi-users POST /auth/login (form) -> bearer token. One request = one iteration.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local reqs, i = {}, 0
function init(args)
  for _, row in ipairs(load_rows(args[1], tonumber(args[3]))) do
    reqs[#reqs + 1] = wrk.format("POST", "/auth/login", headers_for("-", "application/x-www-form-urlencoded"),
      "username=" .. row[2]:gsub("@", "%%40") .. "&password=" .. args[4])
  end
end
function request() i = i % #reqs + 1; return reqs[i] end
function response(status, headers, body)
  if status == 200 then iterations = iterations + 1 end
end
