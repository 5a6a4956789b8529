import asyncio

async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0.020, print, "second timer:", 2)
    loop.call_later(0.010, lambda x: print("first timer:", x), 1)
    loop.call_later(0.030, print, "third timer", "with", 3, "arguments")
    await asyncio.sleep(0.050)
    print("main ends")

asyncio.run(main())
