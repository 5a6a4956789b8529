import asyncio

async def main():
    loop = asyncio.get_running_loop()
    def outer1():
        print("outer 1")
        loop.call_later(0, lambda: print("inner (set by outer 1)"))
    loop.call_later(0, outer1)
    loop.call_later(0, lambda: print("outer 2"))
    await asyncio.sleep(0.020)

asyncio.run(main())
