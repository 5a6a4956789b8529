import asyncio

async def job(name, ms):
    await asyncio.sleep(ms / 1000)
    print(name, "done")
    return name

async def fails(ms):
    await asyncio.sleep(ms / 1000)
    raise ValueError("boom")

async def main():
    a = asyncio.create_task(job("a", 20))
    b = asyncio.create_task(fails(80))
    c = asyncio.create_task(job("c", 200))
    d, p = await asyncio.wait([a, b, c], return_when=asyncio.FIRST_COMPLETED)
    print("first completed:", len(d), len(p), list(d)[0].result())
    d, p = await asyncio.wait([a, b, c], return_when=asyncio.FIRST_EXCEPTION)
    print("first exception:", len(d), len(p))
    d, p = await asyncio.wait([a, b, c], return_when=asyncio.ALL_COMPLETED, timeout=0.030)
    print("timeout 30:", len(d), len(p))
    d, p = await asyncio.wait([a, b, c])
    print("all:", len(d), len(p))
    try:
        await asyncio.wait([])
    except Exception as e:
        print(type(e).__name__, e)
    try:
        await asyncio.wait([a], return_when="SOME")
    except Exception as e:
        print(type(e).__name__, e)
    for aw in asyncio.as_completed([job("x", 90), job("y", 10), job("z", 50)]):
        print("as_completed:", await aw)
    print(await asyncio.gather(job("p", 5), fails(1), return_exceptions=True))

asyncio.run(main())
