import asyncio

def tick(n):
    print("tick", n)
    if n < 3:
        asyncio.get_running_loop().call_soon(lambda: tick(n + 1))

async def main():
    loop = asyncio.get_running_loop()
    loop.call_soon(lambda: tick(1))
    print("main: sleep(0) #1")
    await asyncio.sleep(0)
    print("main: sleep(0) #2")
    await asyncio.sleep(0)
    print("main: sleep(0) #3")
    await asyncio.sleep(0)
    print("main: done")

asyncio.run(main())
