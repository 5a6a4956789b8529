import asyncio

def tick(n):
    print("tick", n)
    if n < 3:
        asyncio.get_running_loop().call_soon(lambda: tick(n + 1))

async def child():
    print("child runs")
    return "child result"

async def main():
    loop = asyncio.get_running_loop()
    t = asyncio.create_task(child())
    loop.call_soon(lambda: tick(1))
    v = await t
    print("main got", v)
    await asyncio.sleep(0.010)

asyncio.run(main())
