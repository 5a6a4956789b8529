import asyncio

async def fails(ms):
    await asyncio.sleep(ms / 1000)
    raise ValueError("boom")

async def job(ms):
    await asyncio.sleep(ms / 1000)
    return ms

async def check():
    d, p = await asyncio.wait([asyncio.create_task(fails(10)), asyncio.create_task(job(60))], return_when=asyncio.FIRST_EXCEPTION)
    print("first exception: done", len(d), "pending", len(p))
    await asyncio.wait(p)
    print("the rest is done")

async def last_fails():
    d, p = await asyncio.wait([asyncio.create_task(job(10)), asyncio.create_task(fails(30))], return_when=asyncio.FIRST_EXCEPTION)
    print("failure last: done", len(d), "pending", len(p))

async def main():
    await check()
    await last_fails()
    await asyncio.sleep(0.020)
    print("main ends")

asyncio.run(main())
