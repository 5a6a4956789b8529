import asyncio

async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0.030, lambda: print("30ms"))
    loop.call_later(0.010, lambda: print("10ms a"))
    loop.call_later(0, lambda: print("0ms"))
    loop.call_later(0.010, lambda: print("10ms b"))
    loop.call_later(0.020, lambda: print("20ms"))
    await asyncio.sleep(0.050)

asyncio.run(main())
