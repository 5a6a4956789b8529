import asyncio

l = None

async def waiter():
    print("waiter: started")
    await l.acquire()
    print("waiter: never")

async def late():
    try:
        print("late: started")
        await l.acquire()
        asyncio.create_task(waiter())
        await asyncio.sleep(0.05)
        print("late: never")
    finally:
        print("late: finally")
        try:
            l.release()
        except Exception as e:
            print("release:", type(e).__name__, e)
        print("released:", l.locked())
        try:
            asyncio.current_task()
        except Exception as e:
            print("current_task:", type(e).__name__, e)

def start_late():
    asyncio.create_task(late())

async def sleeper():
    try:
        await asyncio.sleep(0.1)
    finally:
        asyncio.get_running_loop().call_soon(start_late)

async def main():
    global l
    l = asyncio.Lock()
    asyncio.create_task(sleeper())
    await asyncio.sleep(0.001)
    print("main returns")

asyncio.run(main())
