import asyncio

def tick(n):
    print("tick", n)
    if n < 5:
        asyncio.get_running_loop().call_soon(tick, n + 1)

async def main():
    loop = asyncio.get_running_loop()
    loop.call_soon(tick, 0)
    t = asyncio.create_task(asyncio.sleep(0, "zero"))
    print("spawned", "task")
    print("awaited:", await t)
    print(await asyncio.gather(asyncio.sleep(0.020, "slow"), asyncio.sleep(0.010, "fast"), asyncio.sleep(-1, "negative")))
    print("sleep(-5) returns:", await asyncio.sleep(-0.005, "at once"))

asyncio.run(main())
