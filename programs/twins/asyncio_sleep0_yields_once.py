import asyncio

async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0, lambda: print("0 ms timer"))
    loop.call_soon(lambda: print("call_soon callback"))
    print("main: sleep(0)")
    await asyncio.sleep(0)
    print("main: after sleep(0)")
    await asyncio.sleep(0.010)
    print("main ends")

asyncio.run(main())
