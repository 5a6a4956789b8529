import asyncio

def tick(n):
    print("tick", n)
    if n < 4:
        asyncio.get_running_loop().call_soon(lambda: tick(n + 1))

async def child(name):
    print(name, "runs")
    return name

async def main():
    loop = asyncio.get_running_loop()
    loop.call_soon(lambda: tick(1))
    r = await asyncio.gather(child("a"), child("b"))
    print("main got", r)
    await asyncio.sleep(0.010)

asyncio.run(main())
