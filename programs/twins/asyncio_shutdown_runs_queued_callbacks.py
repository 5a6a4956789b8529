import asyncio

def chain(n):
    print("callback", n)
    if n < 8:
        asyncio.get_running_loop().call_soon(lambda: chain(n + 1))

async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0, lambda: print("0 ms timer: due, runs"))
    loop.call_later(0.050, lambda: print("50 ms timer: dropped"))
    loop.call_soon(lambda: chain(1))
    print("main returns")

asyncio.run(main())
