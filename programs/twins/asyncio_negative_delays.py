import asyncio

async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0, lambda: print("0 ms timer"))
    loop.call_later(-0.005, lambda: print("-5 ms timer"))
    loop.call_later(-0.001, lambda: print("-1 ms timer"))
    loop.call_later(-0.0025, lambda: print("-2.5 ms timer"))
    loop.call_later(-0.0005, lambda: print("-0.5 ms timer"))
    loop.call_soon(lambda: print("call_soon"))
    await asyncio.sleep(0.010)
    print("main ends")

asyncio.run(main())
