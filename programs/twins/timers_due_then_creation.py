import asyncio

async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0.045, lambda: print("45ms"))
    loop.call_later(0.015, lambda: print("15ms a"))
    loop.call_later(0, lambda: print("0ms"))
    loop.call_later(0.015, lambda: print("15ms b"))
    loop.call_later(0.030, lambda: print("30ms"))
    await asyncio.sleep(0.050)

asyncio.run(main())
