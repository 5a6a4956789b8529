import asyncio

def m(n):
    print("microtask", n)
    if n < 4:
        asyncio.get_running_loop().call_soon(lambda: m(n + 1))

async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0, lambda: print("timer (0 ms)"))
    loop.call_soon(lambda: m(1))
    await asyncio.sleep(0.020)

asyncio.run(main())
