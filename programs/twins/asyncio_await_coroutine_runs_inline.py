import asyncio

def tick(n):
    print("tick", n)
    if n < 3:
        asyncio.get_running_loop().call_soon(lambda: tick(n + 1))

async def leaf(x):
    print("leaf", x)
    return x + 1

async def middle(x):
    y = await leaf(x)
    z = await leaf(y)
    return await leaf(z)

async def main():
    loop = asyncio.get_running_loop()
    loop.call_soon(lambda: tick(1))
    print("main awaits")
    r = await middle(1)
    print("main got", r)
    await asyncio.sleep(0)
    print("main after sleep(0)")
    await asyncio.sleep(0.010)
    print("main ends")

asyncio.run(main())
