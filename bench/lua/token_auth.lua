-- token_auth: GET /v2/users/me with a session token (password-checked) as the bearer.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local reqs, i = {}, 0
function init(args)
  for _, row in ipairs(load_rows(args[1], tonumber(args[3]))) do
    reqs[#reqs + 1] = wrk.format("GET", args[4] or "/v2/users/me", headers_for(row[2]))
  end
end
function request() i = i % #reqs + 1; return reqs[i] end
