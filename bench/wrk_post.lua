-- wrk: POST a tiny JSON body (scenario d, `bench/scenarios.py`).
wrk.method = "POST"
wrk.body = '{"n":1}'
wrk.headers["Content-Type"] = "application/json"
