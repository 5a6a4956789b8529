import asyncio

async def main():
    loop = asyncio.get_running_loop()
    def timer1():
        print("timer 1")
        loop.call_soon(lambda: print("microtask 1"))
    def timer2():
        print("timer 2")
        loop.call_soon(lambda: print("microtask 2"))
    loop.call_later(0, timer1)
    loop.call_later(0, timer2)
    await asyncio.sleep(0.020)

asyncio.run(main())
