import asyncio

async def main():
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    def now():
        return round((loop.time() - t0) * 100) * 10
    async def job(name, ms):
        try:
            await asyncio.sleep(ms / 1000)
            print(name, "finished")
            return name
        finally:
            print(name, "finally")
    async with asyncio.timeout(0.050):
        r = await job("fast", 10)
    print("in time:", r)
    try:
        async with asyncio.timeout(0.020):
            await job("slow", 100)
            print("never")
    except Exception as e:
        print("slow:", type(e).__name__, "cancelling:", asyncio.current_task().cancelling())
    try:
        async with asyncio.timeout(0.050):
            raise ValueError("bad")
    except Exception as e:
        print("error:", type(e).__name__, e)
    try:
        async with asyncio.timeout(0):
            print("body starts")
            await asyncio.sleep(0)
            print("never")
    except Exception as e:
        print("zero:", type(e).__name__)
    async with asyncio.timeout(None):
        r = await job("none", 5)
    print("no deadline:", r)

asyncio.run(main())
